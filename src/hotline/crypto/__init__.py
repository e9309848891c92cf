"""Keys, contact cards and safety numbers, the Double Ratchet and the signed envelope.

May import ``core``; opens no file or socket and reads no clock.
"""
