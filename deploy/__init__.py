"""Deployment files; a package so that the tests can import deploy/stack.py as deploy.stack."""
