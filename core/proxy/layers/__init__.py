"""Protocol layers, one module per kind; `interpose.proxy.layer.TABLE` names them all."""
