"""The methods: one module each (``byol``, ``orl``, ``cim``, ``vfs``, ``siammae``, ``cropmae``).

Each subclasses ``base.Method`` (``cropmae`` through ``siammae``).

The registry that drives training is :data:`correlearn.pretrain.METHODS` (method name -> config,
data kind, batch builder); this package holds the ``nn.Module`` s and their batch builders only.
"""
