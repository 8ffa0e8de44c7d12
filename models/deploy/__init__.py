"""Deployment: the network and its weights exported for Paddle Inference (the clip model and
the online step), the predictor that runs them, and the cache of exported models eval.py and
predict.py run by default. It uses the network and the weights code; neither imports it."""
