"""The wire contract shared by vehicle and cloud. Imports nothing else of ours."""
