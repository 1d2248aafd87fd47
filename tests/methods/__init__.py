"""The methods layer (bigramlab/methods/): each method against a naive reference written in
the test, on tiny random models; one file per module."""
