"""The example integration of an agency's own system with the agency API (ADR 0014); see README.md here."""
