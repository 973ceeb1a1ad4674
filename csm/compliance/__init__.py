"""Contact policy across campaigns: calling hours, caps, leases, final outcomes, suppressions.

`policy` is the validated policy file, `store` keeps its versions, `caps` is the
pure cap checker, `gate` applies all of it to one batch of a pass at attempt time.
"""
