"""Error ratios recorded once per window, the page on the recorded series, after 2 minutes.

Also correct: recording rules compute the error ratio over 5 minutes and over 1 hour (cheaper
dashboards, one expression to read); the alert compares both with 14.4 times the budget and
waits 2 minutes (`for`) before paging.
"""
