"""proxy/tls"""
