"""The order workflow's steps: what each state of the state machine does, with AWS behind ports."""
