"""Pages when more than 1 % of checkouts failed over 5 minutes, for 2 minutes.

Wrong: a raw error-ratio threshold: a 10-second blip or a short burst of errors pages someone
at night although it burns almost none of the error budget.
Rejected by: test_4_the_page_comes_for_a_burning_budget_only
"""
