
prod-eu	eu-west-1node-7"0.1.0)ï¾­Þð­‹0d:;d€Ð•ÿ¼1R0
app.global.test*connect: Connection refused:)eè×•ÿ¼1R
db-tcpJ
A	127.0.2.1: fÐß•ÿ¼1R
app.global.test:2g¸ç•ÿ¼1R'
db-tcp*connect: Connection refused:#h ï•ÿ¼1R
app.global.test ÷@è×•ÿ¼1HÒ	