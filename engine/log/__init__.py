"""The append-only event log: the source of truth (see DESIGN.md, "The log")."""

from engine.log.appender import Appender, tail_seq
from engine.log.event import Event, EventObject, decode, encode
from engine.log.reader import read_log

__all__ = ["Appender", "Event", "EventObject", "decode", "encode", "read_log", "tail_seq"]
