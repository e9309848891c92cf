"""Keys, contact cards, safety numbers, the Double Ratchet and the signed envelope."""
