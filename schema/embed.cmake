# Turns schema/trace.sql into a C string (trc__schema_sql) at build time: the DDL has one home.
file(READ ${IN} sql HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${sql}")
file(WRITE ${OUT} "/* Generated from schema/trace.sql; do not edit. */\n"
  "const char trc__schema_sql[] = {${body} 0x00};\n")
