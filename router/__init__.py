"""Routing: decisions from emotion trajectories, Redis queues and the call store."""
