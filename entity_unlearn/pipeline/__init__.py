"""The reference pipeline: inject entities into a model, unlearn them, run the study.

``tiny`` builds the embedded default model and tokenizer, ``finetune`` holds the training
loop (epoch checkpoints, precision, LoRA), ``processes`` shares it out over many processes
(DDP), ``inject`` and ``unlearn`` are the two training stages, ``study`` runs them all and
evaluates every model. Importing this package imports no torch; each module imports it when a
function needs it.
"""
