"""LSTM, GRU, SimpleRNN, Bidirectional."""

__all__ = []
