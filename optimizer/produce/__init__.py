"""Producing variants: conversion (TensorFlow, ai-edge-quantizer), tfmot training, diagnosis, recipes."""
