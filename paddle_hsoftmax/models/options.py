"""The names the models accept for their settings' choices, in a module that needs no Paddle:
the command-line settings (:mod:`paddle_hsoftmax.pipeline.configs`) offer them as choices without
importing the models (a word-vector run on the CPU imports no Paddle at all)."""

__all__ = ["RNN_CELL_NAMES", "POOLINGS"]

RNN_CELL_NAMES = ("gru", "lstm")  # paddle.nn.GRU, paddle.nn.LSTM (models.classifier.RNN_CELLS)
POOLINGS = ("last", "mean", "max", "meanmax")
