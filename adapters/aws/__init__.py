"""Adapters on Amazon Web Services: SNS, SQS, EventBridge and DynamoDB through aioboto3."""
