"""One word2vec optimizer step in this process's share: run alone (the whole batch) or under
``paddle.distributed.launch`` (each process a half, the sparse gradients exchanged as rows by
:class:`~paddle_hsoftmax.distributed.GradientSync`). Rank 0 writes the parameters to OUT.npz.

Usage: python dp_word2vec_step.py CORPUS OUT.npz [cbow|skipgram]
"""

import sys

import numpy as np
import paddle

from paddle_hsoftmax import distributed, processes
from paddle_hsoftmax.commands.common import load_sentences
from paddle_hsoftmax.data.vocab import Vocab
from paddle_hsoftmax.data.windows import EncodedCorpus
from paddle_hsoftmax.pipeline.configs import Word2VecConfig
from paddle_hsoftmax.tasks.word2vec import Word2VecTask

corpus_path, out = sys.argv[1], sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else "skipgram"
rank, world = processes.init()
sentences, source = load_sentences(corpus_path, "tagged")
vocab = Vocab.build(sentences, min_count=1, source=source)
config = Word2VecConfig(dim=8, model=mode, kernel="paddle", node_grad_cap=0, batch_size=64, lr=0.5, seed=3)
task = Word2VecTask(config, vocab, EncodedCorpus.encode(sentences, vocab))  # one process's batches: the whole
distributed.broadcast_parameters(task.model)
centres, contexts, units = next(iter(task.epoch_batches(0)))
if world > 1:
    centres, contexts = processes.split_rows((centres, contexts), rank, world)
result = task.train_step((centres, contexts, units))
sparse = [p.name for p in task.model.parameters() if p.grad is not None and p.grad.is_selected_rows()]
if world > 1:
    sync = distributed.GradientSync(task.model)
    sync(result.loss_sum, result.count, result.units, mean=False)
    print("bytes", sync.last_bytes, flush=True)
task.optimizer.step()
if rank == 0:
    np.savez(out, sparse=np.asarray(len(sparse)),
             **{k: v.numpy() for k, v in task.model.state_dict().items() if k in ("embedding.weight", "output.weight")})
