"""Operator tooling (deploy, AWS set-up) and the local Vonage stand-in: run from a checkout,
never deployed."""
