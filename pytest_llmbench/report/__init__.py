"""Report: the run's results added up once, and drawn: the terminal leaderboard, tables fitted
to the terminal, and the JSON, Markdown and HTML documents."""
