"""CAN frames -> signals with cantools and a DBC file; candump text as an input source."""
