"""Dashboards: agent cues, supervisor wallboard, call timelines and analytics."""
