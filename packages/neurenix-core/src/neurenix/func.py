"""functional_call"""
