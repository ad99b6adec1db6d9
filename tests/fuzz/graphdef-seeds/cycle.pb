

aNegb

bNega