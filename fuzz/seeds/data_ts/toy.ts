# c
@problemName Toy
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength true
@seriesLength 3
@classLabel true up down
@data
1,2,3:4,5,6:up
1,?,3:4,5,6:down
1,2:4,5,6:up
