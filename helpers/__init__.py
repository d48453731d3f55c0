"""The finished pieces of each chapter of "GPT from scratch", imported by later chapters and tests.

Modules: settings (device, seed, smoke mode, folders, presets), data, atomic_io, model, train,
distributed, plots, loss_table, widgets, checks, hub (chapters 07-08), finetune (chapter 08),
alignment, alignment_data and alignment_rl (chapter 09).
"""
