"""Twilio and Twilio-compatible APIs: voice calls and SMS, and the webhooks they send back."""
