"""The solution's burn-rate alert, over the requests of every route rather than checkout's.

Wrong: the SLO is about checkouts, but the ratio counts every request checkout's service
answers. The order lookups, which never fail and come twice as often as checkouts, dilute the
checkouts' errors: a slow burn at 2 % of checkouts reads as 0.7 % of all requests and never
pages.
Rejected by: test_4_the_page_comes_for_a_burning_budget_only
"""
