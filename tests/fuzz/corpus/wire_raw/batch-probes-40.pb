
prod-eu	eu-west-1node-7"0.1.0)ï¾­Şğ­‹0d:;d€Ğ•ÿ¼1R0
app.global.test*connect: Connection refused:)eè×•ÿ¼1R
db-tcpJ
A	127.0.2.1: fĞß•ÿ¼1R
app.global.test:2g¸ç•ÿ¼1R'
db-tcp*connect: Connection refused:#h ï•ÿ¼1R
app.global.test ÷:iˆ÷•ÿ¼1R
db-tcp:Mjğş•ÿ¼1RB
app.global.test*connect: Connection refusedJ
A	127.0.2.1:kØ†–ÿ¼1R
db-tcp: lÀ–ÿ¼1R
app.global.test:5m¨––ÿ¼1R*
db-tcp ÷*connect: Connection refused: n–ÿ¼1R
app.global.test:)oø¥–ÿ¼1R
db-tcpJ
A	127.0.2.1:;pà­–ÿ¼1R0
app.global.test*connect: Connection refused:qÈµ–ÿ¼1R
db-tcp:#r°½–ÿ¼1R
app.global.test ÷:2s˜Å–ÿ¼1R'
db-tcp*connect: Connection refused:2t€Í–ÿ¼1R'
app.global.testJ
A	127.0.2.1:uèÔ–ÿ¼1R
db-tcp:;vĞÜ–ÿ¼1R0
app.global.test*connect: Connection refused:w¸ä–ÿ¼1R
db-tcp ÷: x ì–ÿ¼1R
app.global.test:Dyˆô–ÿ¼1R9
db-tcp*connect: Connection refusedJ
A	127.0.2.1: zğû–ÿ¼1R
app.global.test:{Øƒ—ÿ¼1R
db-tcp:>|À‹—ÿ¼1R3
app.global.test ÷*connect: Connection refused:}¨“—ÿ¼1R
db-tcp:2~›—ÿ¼1R'
app.global.testJ
A	127.0.2.1:2ø¢—ÿ¼1R'
db-tcp*connect: Connection refused:!€àª—ÿ¼1R
app.global.test:È²—ÿ¼1R
db-tcp ÷:<‚°º—ÿ¼1R0
app.global.test*connect: Connection refused:*ƒ˜Â—ÿ¼1R
db-tcpJ
A	127.0.2.1:!„€Ê—ÿ¼1R
app.global.test:3…èÑ—ÿ¼1R'
db-tcp*connect: Connection refused:$†ĞÙ—ÿ¼1R
app.global.test ÷:‡¸á—ÿ¼1R
db-tcp:Nˆ é—ÿ¼1RB
app.global.test*connect: Connection refusedJ
A	127.0.2.1:‰ˆñ—ÿ¼1R
db-tcp:!Šğø—ÿ¼1R
app.global.test:6‹Ø€˜ÿ¼1R*
db-tcp ÷*connect: Connection refused@è×•ÿ¼1HÒ	