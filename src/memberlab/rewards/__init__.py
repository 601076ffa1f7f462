"""Reward catalog stock, redemptions and coupons."""
