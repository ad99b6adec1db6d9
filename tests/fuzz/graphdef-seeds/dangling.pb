
.
xPlaceholder*
dtype0*
shape:

yAddV2x	nowhere:0