"""The pipeline layer (4): what turns tokens into model inputs and model outputs into text, shared by
training (:mod:`paddle_hsoftmax.tasks`) and by loading a finished run
(:mod:`paddle_hsoftmax.inference`), which must never import training code.

- :mod:`.configs`: one settings dataclass per task (flags, help, rules).
- :mod:`.encoding`: special tokens, padding, teacher forcing, vocabularies with ``<unk>``/``</s>``.
- :mod:`.tagging`: tokens -> token ids and sub-token ids for the tagger.
- :mod:`.translate`: the encoder-decoder built from its settings, :class:`~.translate.Translator`,
  BLEU/chrF.
"""
