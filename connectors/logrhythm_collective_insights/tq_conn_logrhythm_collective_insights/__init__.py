"""tq-conn-logrhythm-collective-insights: IOCs of LogRhythm alarms into Recorded Future Collective Insights."""

from tq_conn_logrhythm_collective_insights.connector import CONNECTOR, main

__all__ = ["CONNECTOR", "main"]
