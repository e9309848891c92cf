"""A terminal's home folder: its config file and key files at rest."""
