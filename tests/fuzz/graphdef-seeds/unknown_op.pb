
.
xPlaceholder*
dtype0*
shape:

fancyFancyOpx