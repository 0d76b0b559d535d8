"""runtime/builtins"""
