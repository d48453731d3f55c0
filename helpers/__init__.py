"""The finished pieces of each chapter of "GPT from scratch", imported by later chapters and tests.

Modules: settings (device, seed, smoke mode, folders, presets), data, model, train, plots,
loss_table, widgets, checks.
"""
