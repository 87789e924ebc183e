"""TLS over TCP: record layer, handshake messages, key schedules and decryption.

``handshake`` parses handshake message bodies independently of the record
layer (QUIC reuses it); ``TlsDecoder`` (in ``decoder``) is the StreamDecoder.
"""
