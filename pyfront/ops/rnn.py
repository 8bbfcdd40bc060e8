"""Recurrent ops: whole-sequence LSTM, GRU and SimpleRNN."""

__all__ = []
