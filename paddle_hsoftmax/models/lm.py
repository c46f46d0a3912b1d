"""LSTM language model over any large-vocabulary output layer.

Paper: Zaremba, Sutskever & Vinyals, "Recurrent Neural Network Regularization" (2014) for the
model (embedding -> LSTM with dropout between layers -> softmax); Press & Wolf, "Using the Output
Embedding to Improve Language Models" (EACL 2017) and Inan et al. (ICLR 2017) for tying the input
embedding to the output weights.

Idea: the LSTM turns the words so far into a hidden state ``[B, T, H]``; a projection brings it to
the output layer's size D (when H != D); the output layer (full softmax, hierarchical softmax,
differentiated softmax, CNN-softmax, adaptive softmax: see :mod:`paddle_hsoftmax.output`) gives the
exact negative log-likelihood of the next word. Training uses truncated back-propagation through
time: the state is carried from one window to the next and detached, so gradients flow at most
``bptt`` steps back.

Using it: :meth:`LSTMLanguageModel.next_words` (exact top-k next words, the H-softmax's tree
search) and :meth:`LSTMLanguageModel.generate` (continuations sampled word by word, the
H-softmax's walk down the tree).

Shapes: tokens ``[B, T]``, targets ``[B, T]`` -> nll ``[B, T]``; state ``(h, c)``, each
``[layers, B, H]``.
"""

from __future__ import annotations

from typing import Optional, Tuple

import paddle
import paddle.nn as nn

from ..output.base import OutputLayer

__all__ = ["LSTMLanguageModel"]

State = Tuple[paddle.Tensor, paddle.Tensor]


class LSTMLanguageModel(nn.Layer):
    """Embedding -> dropout -> LSTM -> dropout -> (projection) -> output layer.

    Args:
        vocab_size: V (the output layer's ``num_classes``).
        output: the output layer, built for ``feature_size`` D.
        embed_dim: E.
        hidden_size: H, per LSTM layer.
        num_layers: stacked LSTM layers (dropout between them).
        dropout: on the embeddings, between layers and on the LSTM output.
        tie: share the input embedding with the output weights (``output`` must have a ``weight``
            of shape ``[V, E]``, as :class:`~paddle_hsoftmax.output.full.FullSoftmax` with
            D = E has).
    """

    def __init__(
        self,
        vocab_size: int,
        output: OutputLayer,
        embed_dim: int = 256,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.2,
        tie: bool = False,
    ) -> None:
        super().__init__()
        if output.num_classes != vocab_size:
            raise ValueError(f"the output layer has {output.num_classes} classes, the vocabulary {vocab_size} words")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        D = output.feature_size
        self.proj = nn.Linear(hidden_size, D) if hidden_size != D else None
        self.output = output
        self.num_layers, self.hidden_size = num_layers, hidden_size
        if tie:
            weight = getattr(output, "weight", None)
            if weight is None or list(weight.shape) != [vocab_size, embed_dim]:
                shape = None if weight is None else list(weight.shape)
                raise ValueError(
                    f"--tie needs an output layer with a [V, E] = [{vocab_size}, {embed_dim}] weight "
                    f"(the full softmax with its size equal to the embedding size); this one has {shape}"
                )
            output.weight = self.embed.weight  # one parameter, two uses

    def initial_state(self, batch_size: int) -> State:
        shape = [self.num_layers, batch_size, self.hidden_size]
        return paddle.zeros(shape), paddle.zeros(shape)

    def hidden(self, tokens: paddle.Tensor, state: Optional[State] = None) -> Tuple[paddle.Tensor, State]:
        """The output layer's input ``[B, T, D]`` and the state after the last step."""
        x = self.dropout(self.embed(tokens))  # (B, T, E)
        states, new_state = self.rnn(x, state)  # (B, T, H)
        h = self.dropout(states)
        if self.proj is not None:
            h = self.proj(h)  # (B, T, D)
        return h, new_state

    def forward(self, tokens: paddle.Tensor, targets: paddle.Tensor, state: Optional[State] = None):
        """``(nll [B, T], state)``: exact negative log-likelihood of each target word."""
        h, new_state = self.hidden(tokens, state)
        return self.output(h, targets), new_state

    # -- using the model: next words and generation (eval mode, no gradients) ----------------------
    def _read_prompts(self, prompts) -> Tuple[paddle.Tensor, State]:
        """The output layer's input after each prompt's last word ``[B, D]`` and the state there.

        ``prompts``: an int tensor or array ``[B, T]``, or a list of B id sequences of any
        lengths (each read alone, then batched)."""
        if isinstance(prompts, paddle.Tensor) or (hasattr(prompts, "ndim") and getattr(prompts, "ndim") == 2):
            tokens = paddle.to_tensor(prompts, dtype="int64") if not isinstance(prompts, paddle.Tensor) else prompts
            if tokens.ndim != 2 or tokens.shape[1] < 1:
                raise ValueError(f"prompts must be [B, T] ids with T >= 1, got shape {list(tokens.shape)}")
            h, state = self.hidden(tokens.astype("int64"))
            return h[:, -1], state
        rows = [list(p) for p in prompts]
        if not rows or any(len(r) == 0 for r in rows):
            raise ValueError("prompts must hold at least one sequence, each of at least one word id")
        last, hs, cs = [], [], []
        for r in rows:
            h, (hh, cc) = self.hidden(paddle.to_tensor([r], dtype="int64"))  # (1, T, D)
            last.append(h[:, -1])
            hs.append(hh)
            cs.append(cc)
        return paddle.concat(last, axis=0), (paddle.concat(hs, axis=1), paddle.concat(cs, axis=1))

    @paddle.no_grad()
    def next_words(self, prompts, k: int = 5):
        """The exact k most probable next words after each prompt: ``(log_probs [B, k], ids
        [B, k])``, from the output layer's ``predict`` (the tree search for the H-softmax)."""
        was_training = self.training
        self.eval()
        try:
            h, _ = self._read_prompts(prompts)
            return self.output.predict(h, k=k)
        finally:
            self.train(was_training)

    @paddle.no_grad()
    def generate(self, prompts, n_words: int, temperature: float = 1.0, seed: Optional[int] = None,
                 stop_id: Optional[int] = None) -> paddle.Tensor:
        """Sampled continuations: ``n_words`` word ids after each prompt, ``[B, n_words]``.

        Each word is drawn with the output layer's ``sample`` (for the H-softmax a walk down the
        tree, ``O(path length)`` per word; see its ``temperature``) and fed back in. ``seed``
        (an int >= 1) makes the draws repeatable (step ``i`` uses ``seed + i``); ``stop_id``
        (e.g. ``</s>``): after a row draws it, the row's remaining positions hold ``stop_id``.
        The caller turns ids back into words and drops what follows ``stop_id``.
        """
        if isinstance(n_words, bool) or not isinstance(n_words, int) or n_words < 1:
            raise ValueError(f"n_words must be an integer >= 1, got {n_words!r}")
        was_training = self.training
        self.eval()
        try:
            h, state = self._read_prompts(prompts)  # (B, D)
            words, stopped = [], None
            for i in range(n_words):
                nxt = self.output.sample(h, 1, temperature, None if seed is None else seed + i)[:, 0]  # (B,)
                if stop_id is not None:
                    if stopped is not None:
                        nxt = paddle.where(stopped, paddle.full_like(nxt, stop_id), nxt)
                    stopped = nxt == stop_id if stopped is None else paddle.logical_or(stopped, nxt == stop_id)
                words.append(nxt)
                if i + 1 < n_words:
                    out, state = self.hidden(nxt.unsqueeze(1), state)  # (B, 1, D)
                    h = out[:, 0]
            return paddle.stack(words, axis=1)  # (B, n_words)
        finally:
            self.train(was_training)
