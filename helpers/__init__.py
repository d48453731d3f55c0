"""The finished pieces of each chapter of "GPT from scratch", imported by later chapters and tests.

Modules: settings (device, seed, smoke mode, folders, ranks, run report), data, atomic_io, model,
train (the training loop; presets, its command line train_cli, history, precision and mfu beside
it), environment, checkpoint, describe, distributed, plots, loss_table,
widgets, exercises (one module of checks per chapter), hub (chapters 07-08), finetune (chapter
08), alignment, alignment_data and alignment_rl (chapter 09).
"""
