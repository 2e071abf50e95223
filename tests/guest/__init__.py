"""A tiny bootable Linux guest, built from Debian packages at test time, for real-VM tests."""
