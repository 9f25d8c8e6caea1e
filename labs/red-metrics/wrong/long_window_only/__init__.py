"""Pages when the error budget burns 14.4 times too fast over the last hour.

Wrong: only the long window: an outage pages in time, but the page goes on for most of an
hour after checkout has recovered (nothing forgets the outage before the hour has passed).
Rejected by: test_4_the_page_comes_for_a_burning_budget_only
"""
