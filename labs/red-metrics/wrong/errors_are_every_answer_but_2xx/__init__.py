"""Pages when the error budget burns 14.4 times too fast, over the last hour and 5 minutes.

Wrong: counts every answer that is not 2xx as a failure. A declined card or a mistyped address
(4xx) is the shopper's doing, not checkout failing: the SLO counts 5xx only, so a day with
many 4xx pages on-call for nothing.
Rejected by: test_4_the_page_comes_for_a_burning_budget_only
"""
