"""Attacks on vxds through its real CLI: forged receipts, hostile sources, damaged locks."""
