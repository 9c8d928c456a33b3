"""The billing domain: customers, plans, subscriptions, invoices and the payments behind them."""
