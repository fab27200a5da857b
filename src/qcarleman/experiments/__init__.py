"""Reproductions of published experiments: ``burgers`` (the viscous Burgers equation of the PNAS
2021 Carleman paper, continuous-time Carleman linearization)."""
