"""Diagnostics: tools that look inside recurrent models (gradient flow through time, ...)."""
